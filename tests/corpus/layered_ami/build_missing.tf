# no build block
# summary: Missing Build Block
# at: resource "immutable_layered_ami" "app" {

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
}
