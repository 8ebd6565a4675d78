# empty owners list
# summary: Empty Owners
# at: owners = []

data "immutable_ami" "x" {
  layer  = "corpus-base"
  owners = []
}
