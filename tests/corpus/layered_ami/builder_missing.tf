# build block without a builder
# summary: Missing Builder
# at:   build {

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
  }
}
