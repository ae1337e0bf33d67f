package storetest

import (
	"context"
	"fmt"
	"maps"

	"github.com/b2cfs/b2cfs/core"
)

// Key returns the key of name in g's current view (core.Group.View), an
// error wrapping core.ErrNotExist when the view has no such name.
func Key(ctx context.Context, g *core.Group, name string) (string, error) {
	v, err := g.View(ctx)
	if err != nil {
		return "", err
	}
	k, ok := v.Key(name)
	if !ok {
		return "", fmt.Errorf("%s: %w", name, core.ErrNotExist)
	}
	return k, nil
}

// Keys returns g's current view as name -> key.
func Keys(ctx context.Context, g *core.Group) (map[string]string, error) {
	v, err := g.View(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, v.Len())
	for n, e := range v.All() {
		out[n] = e.Key
	}
	return out, nil
}

// Entries returns g's current view as name -> entry.
func Entries(ctx context.Context, g *core.Group) (map[string]core.Entry, error) {
	v, err := g.View(ctx)
	if err != nil {
		return nil, err
	}
	return maps.Collect(v.All()), nil
}
