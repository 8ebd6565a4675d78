# A build agent: Java for the agent process, the usual build tools, and a
# `jenkins` user the master connects to over SSH.
agent-packages:
  pkg.installed:
    - pkgs:
      - openjdk-11-jre-headless
      - git
      - build-essential
      - docker.io

jenkins:
  user.present:
    - home: /var/lib/jenkins
    - shell: /bin/bash
    - groups:
      - docker
    - require:
      - pkg: agent-packages

/var/lib/jenkins/.ssh/authorized_keys:
  file.managed:
    - contents_pillar: jenkins:master_public_key
    - user: jenkins
    - group: jenkins
    - mode: '0600'
    - makedirs: True
    - require:
      - user: jenkins
