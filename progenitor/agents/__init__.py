"""The agents of the loop: architect, coder, safety reviewer, trainer, oversight."""
