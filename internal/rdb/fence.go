package rdb

// Fencing. Every write of a lead's delivery state (Release, MarkSending,
// Finish, MarkDead, Failed) carries the run's token, the fencing token
// Begin took the lead's lock with and named in the attempt record (field
// 'run'). The store applies the write only while that run still holds the
// lead: no other run holds the lock, and none began after it
// (scripts/lib/holds.lua). A worker cut off from Redis, whose lock expired
// while another took the lead over, may have its writes land long after
// (issue 17.1); they change nothing the newer run owns, and the method
// answers Fenced, never an error. Workers of the previous version name no
// run, so between them and this version only the lock fences.

// Fence says whether a fenced write was applied.
type Fence int

const (
	// Owned: the run holds the lead; the write was applied.
	Owned Fence = iota
	// Fenced: another run holds the lead's lock or began after this one
	// (or the lead is delivered): the lead's state was left to it. Each
	// method says what, if anything, it still wrote.
	Fenced
)

// fenceOf reads a script's 1 (owned) or 0 (fenced).
func fenceOf(n int64) Fence {
	if n == 1 {
		return Owned
	}
	return Fenced
}
