"""The review studio: a local web app over an output folder, and the decisions it records."""
