# abbreviated commit
# summary: Invalid Commit
# at: commit = "abc1234"

data "immutable_ami" "x" {
  layer  = "corpus-base"
  commit = "abc1234"
}
