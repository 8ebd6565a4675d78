base:
  '*':
    - jenkins.slave
