package core

// Garbage collection: deleting the files of a bucket that no group
// references.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// GCOptions tune CollectGarbage. The zero value deletes all garbage,
// whatever its age.
type GCOptions struct {
	// Grace keeps recent files: an unreferenced file is kept while it is
	// younger than Grace, and so is one with a newer live version
	// uploaded less than Grace ago (see CollectGarbage). It must not be
	// negative.
	Grace time.Duration
	// DryRun reports the garbage and deletes nothing.
	DryRun bool
	// Now is the clock the grace period is measured on; default time.Now.
	Now func() time.Time
	// Logger receives debug messages on the groups read. Default: discard.
	Logger *slog.Logger
}

// GCReport is what CollectGarbage found and did. Every file of the
// listing is counted once: Files is Referenced + Foreign + Unmarked +
// Young + len(Garbage).
type GCReport struct {
	Groups int // groups in the bucket info, of either format
	Files  int // files the bucket listing returned (the newest version of each name)
	// Referenced counts the files some group's current state needs
	// (Group.Files): kept.
	Referenced int
	// Foreign counts the files whose names do not have a version's shape
	// "<name>/<key>": never touched.
	Foreign int
	// Unmarked counts the unreferenced files of that shape that b2cfs did
	// not write (no group mark, not under ReservedPrefix): kept, whatever
	// their age.
	Unmarked int
	// Young counts the unreferenced files within the grace period: kept.
	Young int
	// Garbage lists the rest in name order: the files deleted (those in
	// Failed excepted) or, with DryRun, the files that would be.
	Garbage      []FileInfo
	GarbageBytes int64 // the total size of Garbage
	// Failed holds the deletions that failed, by file name; nil when none
	// did. A file that was already gone is not a failure.
	Failed map[string]error
	// Now is when the grace period ended: the age of a file is Now minus
	// its upload time.
	Now time.Time
}

// GCRefusedError is the error of a CollectGarbage that refused to run,
// since a group's files could not be told from garbage: its index could
// not be read or decoded (Err says why), or it references a file that the
// bucket listing lacks (File), as a damaged group or one in a format this
// package does not know would. Nothing was deleted.
type GCRefusedError struct {
	Group string // the group concerned
	File  string // the referenced file the listing lacks; "" when the index could not be read
	Err   error  // why the index could not be read; nil when File is set
}

func (e *GCRefusedError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("refusing to collect garbage: group %q references %q, which the bucket listing lacks: the group may be damaged, or in a format this b2cfs does not know", e.Group, e.File)
	}
	return fmt.Sprintf("refusing to collect garbage: cannot read the index of group %q, so its files cannot be told from garbage: %v", e.Group, e.Err)
}

func (e *GCRefusedError) Unwrap() error { return e.Err }

// CollectGarbage deletes the files of the bucket behind s that no group
// references: versions left by writers that crashed between upload and
// commit, versions superseded or removed whose deletion never ran (short-
// lived programs, closed Groups, lost replies), and superseded manifests
// of FormatB2cfs groups. It reads the index of every group the bucket
// info holds (GroupsIn: both formats), then lists the bucket once.
//
// A listed file is deleted only if all of these hold:
//   - its name has a version's shape, "<name>/<key>" with a key of KeyLen
//     lower-case hex digits and a name CheckName accepts (otherwise it is
//     Foreign);
//   - b2cfs wrote it: it carries a group mark (FileInfo.Group), or its
//     name is under ReservedPrefix (otherwise it is Unmarked: blazer's
//     x/consistent and b2cfs releases before the mark write none, and
//     their garbage is left to them);
//   - no group's current state needs it (otherwise it is Referenced);
//   - it was uploaded at least opts.Grace before opts.Now;
//   - no file some group needs under the same prefix (the object's name
//     in FormatBlazer, the group's data or manifest folder in FormatB2cfs)
//     was uploaded within opts.Grace, since this one may have been
//     superseded only just now and still be read by other hosts.
//
// The last two make files Young. An object removed from its group whose
// group saw no newer upload within the grace period is garbage at once,
// whatever its age: hosts that still read it get errors once it is
// deleted.
//
// Writers may commit meanwhile: the indexes are read before the listing,
// so a version committed in between is young, and one superseded in
// between is still referenced by what was read; either way it is kept.
//
// CollectGarbage refuses to run, with a *GCRefusedError and before
// deleting anything, when the index of any group cannot be read or
// decoded, or a group references a file the listing lacks: live data
// could otherwise be taken for garbage. A failed deletion does not stop
// the others: the report's Failed has each, and the error says how many
// failed. The report is never nil; after an error it holds what was
// counted and done until then.
func CollectGarbage(ctx context.Context, s Store, opts GCOptions) (*GCReport, error) {
	r := &GCReport{}
	if opts.Grace < 0 {
		return r, fmt.Errorf("negative grace period %v", opts.Grace)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	info, err := s.BucketInfo(ctx)
	if err != nil {
		return r, err
	}
	// A group in both formats appears twice in GroupsIn; its Group reports
	// it as corrupt, which refuses.
	seen := map[string]bool{}
	var groups []string
	for _, ref := range GroupsIn(info.Info) {
		if !seen[ref.Name] {
			seen[ref.Name] = true
			groups = append(groups, ref.Name)
		}
	}
	referenced := map[string]bool{} // B2 file names some group needs
	byGroup := map[string][]string{}
	for _, name := range groups {
		files, err := gcGroupFiles(ctx, s, name)
		if err != nil {
			return r, &GCRefusedError{Group: name, Err: err}
		}
		for _, f := range files {
			referenced[f] = true
		}
		byGroup[name] = files
		opts.Logger.Debug("gc: read group index", "group", name, "files", len(files))
	}
	r.Groups = len(groups)

	files, err := s.List(ctx, "")
	if err != nil {
		return r, err
	}
	r.Files = len(files)
	listed := make(map[string]bool, len(files))
	for _, f := range files {
		listed[f.Name] = true
	}
	// A group that references files the listing lacks is not understood
	// (or is damaged): its data could be taken for garbage.
	for _, g := range groups {
		for _, f := range byGroup[g] {
			if !listed[f] {
				return r, &GCRefusedError{Group: g, File: f}
			}
		}
	}

	r.Now = opts.Now()
	cutoff := r.Now.Add(-opts.Grace)
	// newestLive is the upload time of the newest live version stored
	// under a name prefix: what precedes "/<key>", the object's name in
	// FormatBlazer and the group's data or manifest folder in FormatB2cfs
	// (manifestFormat.file and manifest).
	newestLive := map[string]time.Time{}
	for _, f := range files {
		if referenced[f.Name] {
			n, _, _ := splitVersionFile(f.Name)
			if f.Modified.After(newestLive[n]) {
				newestLive[n] = f.Modified
			}
		}
	}
	for _, f := range files {
		prefix, _, ok := splitVersionFile(f.Name)
		switch {
		case !ok:
			r.Foreign++
		case referenced[f.Name]:
			r.Referenced++
		case f.Group == "" && !strings.HasPrefix(f.Name, ReservedPrefix):
			r.Unmarked++
		case f.Modified.IsZero() || f.Modified.After(cutoff): // uploaded less than Grace ago
			r.Young++
		case newestLive[prefix].After(cutoff):
			// A newer version was stored within the grace period, so this
			// one may have been replaced only just now.
			r.Young++
		default:
			r.Garbage = append(r.Garbage, f)
			r.GarbageBytes += f.Size
		}
	}
	if opts.DryRun {
		return r, nil
	}
	var first error
	for _, f := range r.Garbage {
		if err := s.Delete(ctx, f.Name, f.ID); err != nil && !errors.Is(err, ErrNotExist) {
			if r.Failed == nil {
				r.Failed, first = map[string]error{}, err
			}
			r.Failed[f.Name] = err
		}
	}
	if len(r.Failed) > 0 {
		return r, fmt.Errorf("%d of %d deletions failed, first: %w", len(r.Failed), len(r.Garbage), first)
	}
	return r, nil
}

// gcGroupFiles returns the B2 files the current state of group name needs.
func gcGroupFiles(ctx context.Context, s Store, name string) ([]string, error) {
	g, err := NewGroup(s, name, Options{Grace: -1})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	return g.Files(ctx)
}
