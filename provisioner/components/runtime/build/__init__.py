"""runtime/build: Dockerfile -> image. `dockerfile` parses, `dockerignore` filters the context,
`builder` runs the steps (RUN through a container) with a cache keyed on parent and inputs."""
