"""The parts of an extractive answer: what a question names, what kind of answer it asks for."""
