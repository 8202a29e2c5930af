//go:build race

package verifier_test

// raceEnabled skips timing reports, which mean nothing under the race
// detector.
const raceEnabled = true
