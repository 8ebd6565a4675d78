# Jenkins LTS from the project's Debian repository, on OpenJDK 11.
openjdk-11-jre-headless:
  pkg.installed

jenkins-repo:
  pkgrepo.managed:
    - name: deb https://pkg.jenkins.io/debian-stable binary/
    - file: /etc/apt/sources.list.d/jenkins.list
    - key_url: https://pkg.jenkins.io/debian-stable/jenkins.io.key

jenkins:
  pkg.installed:
    - version: {{ pillar['jenkins']['version'] }}
    - require:
      - pkg: openjdk-11-jre-headless
      - pkgrepo: jenkins-repo
  service.running:
    - enable: True
    - require:
      - pkg: jenkins

/etc/default/jenkins:
  file.replace:
    - pattern: '^JAVA_ARGS=.*'
    - repl: 'JAVA_ARGS="-Djava.awt.headless=true -Djenkins.install.runSetupWizard=false -Xmx{{ pillar['jenkins']['heap'] }}"'
    - require:
      - pkg: jenkins
    - watch_in:
      - service: jenkins
