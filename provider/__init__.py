"""The provider node (数据资源挂载): mounts a provider's datasets, verifies job tickets, computes locally."""
