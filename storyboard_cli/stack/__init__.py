"""Running the system on machines: local services, the FRP tunnel, the `storyboard up`
supervisor, `doctor` and `demo`."""
