base:
  '*':
    - jenkins.master
