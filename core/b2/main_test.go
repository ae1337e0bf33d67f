package b2_test

import (
	"flag"
	"os"
	"testing"
)

// TestMain lets the long fault tests (bothFormatsParallel, TestCampaignOnB2)
// run all at once: they spend their time waiting out retry backoffs, not
// on the CPU, so the default of GOMAXPROCS at a time would only queue
// them. An explicit -parallel is kept.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
