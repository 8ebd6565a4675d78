jenkins:
  version: 2.346.3
  heap: 2g
  # The demo master's key: replace with your own Jenkins master's public key.
  master_public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFY1sFqLM2Zc1tHjKxJYv5nb5Xq1Oq0bQY6d1nO3mXbE jenkins-master
