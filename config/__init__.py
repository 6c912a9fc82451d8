"""Platform configuration: environments, accelerator presets, pinned versions, names and ports."""
