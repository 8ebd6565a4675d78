# build.command that is not installed
# summary: Packer Not Found
# at: command         = "no-such-packer build"

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    packer_template = "images/template.json"
    command         = "no-such-packer build"
  }
}
