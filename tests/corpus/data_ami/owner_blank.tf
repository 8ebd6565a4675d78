# blank owner
# summary: Empty Value
# at: owners = [""]

data "immutable_ami" "x" {
  layer  = "corpus-base"
  owners = [""]
}
