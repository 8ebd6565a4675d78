# template with two Fingerprint tags
# summary: Unreadable Packer Template
# at: packer_template = "images/two-fingerprints.json"

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
    packer_template = "images/two-fingerprints.json"
  }
}
