# build block without a builder
# summary: Missing Builder
# gap: the diagnostic has the path `build`, which Terraform shows without a source line

resource "immutable_layered_ami" "app" {
  layer  = "corpus-app"
  commit = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  parent = "@AMI@"
  build {
  }
}
