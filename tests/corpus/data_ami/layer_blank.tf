# layer of spaces
# summary: Empty Value
# at: layer = "   "

data "immutable_ami" "x" {
  layer = "   "
}
