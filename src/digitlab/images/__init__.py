"""Images in: safe decoding, MNIST-style preparation, splitting numbers into digits, user-style renders."""
