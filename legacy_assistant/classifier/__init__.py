"""The intent classifier family: intents files, features, training, evaluation, the predictor."""
