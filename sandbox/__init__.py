"""Code execution sandboxes (bwrap, docker, local) and a warm worker pool."""
