# packer_template that does not exist
# summary: Packer Template Not Found
# at: packer_template = "images/missing.json"

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    packer_template = "images/missing.json"
  }
}
