# empty layer
# summary: Empty Value
# at: layer = ""

data "immutable_ami" "x" {
  layer = ""
}
