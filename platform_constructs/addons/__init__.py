"""EKS add-ons, one per file, each with its pinned version (config/versions.py) and its IAM beside it."""
