"""skacd: detect AI-generated images with single-class attribution modeling.

A scikit-learn-compatible implementation of arXiv 2603.00717: a frozen image
encoder, an autoencoder fitted on one class only (the *attribution space*),
and a light classifier on the attribution residuals.
"""

__version__ = "0.1.0.dev0"
