"""The test suite. A package, so that its helper modules are imported one way (``tests.helpers``,
``tests.server_process``, ...) whatever the working directory."""
