"""Running the system on machines: local processes, the FRP tunnel, the `storyboard up`
supervisor, `doctor` and `demo`."""
