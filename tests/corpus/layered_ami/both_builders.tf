# packer_template and native together
# summary: Conflicting Builders
# at: native {

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    packer_template = "images/template.json"
    native {
      user_data = "#!/bin/sh\nshutdown -h now\n"
    }
  }
}
