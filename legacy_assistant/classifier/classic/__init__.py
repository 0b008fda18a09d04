"""Importing classic Keras chatbots (``chatbot_model.h5`` + word/class lists) without Keras or pickle."""
