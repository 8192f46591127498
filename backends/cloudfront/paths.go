package cloudfront

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// CloudFront's documented quotas and rules for invalidations, which the
// backend keeps to on the client instead of meeting them as errors.
const (
	// MaxPathsInProgress is how many individual (non-wildcard) paths may
	// be in invalidations in progress at once, per distribution: "you can
	// have invalidation requests for up to 3,000 files per distribution in
	// progress at one time".
	// https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/InvalidationLimits.html
	MaxPathsInProgress = 3000

	// MaxWildcardsInProgress is how many wildcard paths (ending in "*")
	// may be in progress at once, per distribution, independently of
	// MaxPathsInProgress: "you can have requests for up to 15
	// invalidation paths in progress at one time".
	// https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/InvalidationLimits.html
	MaxWildcardsInProgress = 15

	// MaxPathLength is the longest invalidation path: "The maximum length
	// of a path is 4,000 characters."
	// https://github.com/awsdocs/amazon-cloudfront-developer-guide/blob/main/doc_source/Invalidation.md#invalidation-specifying-objects
	MaxPathLength = 4000

	// MaxTagLength is the longest cache tag CloudFront invalidates: "The
	// maximum length of a tag is 256 characters."
	// https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/invalidation-specifying-tags.html
	MaxTagLength = 256

	// FreePathsPerMonth is how many invalidation paths an AWS account
	// submits free each month, across all its distributions; each path
	// after that costs [PricePerPathUSD]. A wildcard path, "/*" included,
	// counts as one path. "The first 1,000 invalidation paths that you
	// submit per month are free; you pay for each invalidation path over
	// 1,000 in a month."
	// https://github.com/awsdocs/amazon-cloudfront-developer-guide/blob/main/doc_source/Invalidation.md#paying-for-file-invalidation
	FreePathsPerMonth = 1000

	// PricePerPathUSD is the price of an invalidation path past
	// FreePathsPerMonth: "Thereafter, $0.005 per path requested for
	// invalidation." https://aws.amazon.com/cloudfront/pricing/
	PricePerPathUSD = 0.005

	// AllPath is the invalidation path of everything the distribution
	// caches: one wildcard path.
	AllPath = "/*"
)

// ErrNotInvalidatable is wrapped by the error of a URL or tag that has no
// invalidation path: a "*" inside a path, a path longer than
// [MaxPathLength], a tag CloudFront cannot name, or any tag without
// [WithCacheTags].
var ErrNotInvalidatable = errors.New("cloudfront: cannot be invalidated")

// InvalidationPath returns the invalidation path of a purge URL: its path
// and query, in canonical form ([backends.CanonicalURL]), as CloudFront
// matches them against the URLs it cached. An absolute URL's scheme and
// host are dropped: a distribution invalidates a path on every host it
// serves (its alternate domain names and its cloudfront.net name), so
// "https://www.example.com/posts/1?page=2" and "/posts/1?page=2" are the
// same path "/posts/1?page=2". A query is kept, since CloudFront caches each
// query string of a page separately when it forwards query strings (the
// backend cannot know whether the cache key ignores it); a URL whose path
// and query end in "*" is a wildcard path, which invalidates every URL
// beginning with the rest. A "*" anywhere else is refused (CloudFront allows
// the wildcard only at the end), and so is a path longer than
// [MaxPathLength].
//
// A page behind signed URLs is cached under its path without the signature:
// purge it by its path, without the query.
func InvalidationPath(rawURL string) (string, error) {
	c, err := backends.CanonicalURL(rawURL)
	if err != nil {
		return "", err
	}
	p := c
	if !strings.HasPrefix(c, "/") {
		_, rest, _ := strings.Cut(c, "://")
		i := strings.IndexByte(rest, '/')
		p = rest[i:] // a canonical absolute URL always has a path
	}
	if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
		return "", fmt.Errorf("%w: a \"*\" inside the path (CloudFront reads it as a wildcard, allowed only at the end)", ErrNotInvalidatable)
	}
	if len(p) > MaxPathLength {
		return "", fmt.Errorf("%w: the path is %d characters long, more than CloudFront's %d", ErrNotInvalidatable, len(p), MaxPathLength)
	}
	return p, nil
}

// isWildcard reports whether an invalidation path or item counts against
// MaxWildcardsInProgress: a path ending in "*". A tag item ("#tag") is
// never a wildcard: CloudFront's tags have no wildcard syntax, "*" is an
// ordinary character of a tag.
func isWildcard(item string) bool {
	return strings.HasPrefix(item, "/") && strings.HasSuffix(item, "*")
}

// CheckTag reports why CloudFront would refuse to invalidate tag, if it
// would: the canonical rule of [backends.CanonicalTag] (the error wraps
// backends.ErrInvalidTag), and CloudFront's own, at most [MaxTagLength]
// characters of ASCII from "!" to "~" (the error wraps
// [ErrNotInvalidatable]). Use it to check tags before purging them; a
// backend without [WithCacheTags] refuses every tag besides.
// https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/invalidation-specifying-tags.html
func CheckTag(tag string) error {
	c, err := backends.CanonicalTag(tag)
	if err != nil {
		return err
	}
	if len(c) > MaxTagLength {
		return fmt.Errorf("%w: the tag is %d characters long, more than CloudFront's %d", ErrNotInvalidatable, len(c), MaxTagLength)
	}
	for i := 0; i < len(c); i++ {
		if c[i] < '!' || c[i] > '~' {
			return fmt.Errorf("%w: CloudFront tags are ASCII from \"!\" to \"~\" (byte %d is not)", ErrNotInvalidatable, i)
		}
	}
	return nil
}

// TagItem returns the invalidation item of a cache tag: "#" and the tag, or
// [CheckTag]'s error. It is what Purge sends for a tag of a backend with
// [WithCacheTags], as [InvalidationPath] is for a URL.
func TagItem(tag string) (string, error) {
	if err := CheckTag(tag); err != nil {
		return "", err
	}
	return "#" + tag, nil // a valid tag is canonical as it is
}

// plan is what one call to Purge sends: the distinct invalidation items,
// which objects of the request each stands for, and the objects refused.
type plan struct {
	items   []string            // distinct, in the request's order
	objects map[string][]object // item -> the request's objects it purges
	refused []refusal
}

type object struct {
	tag   bool
	value string // as the Request held it
}

type refusal struct {
	object
	err error
}

// planRequest turns r into invalidation items.
func (b *Backend) planRequest(r backends.Request) plan {
	p := plan{objects: make(map[string][]object, r.Len())}
	add := func(item string, o object) {
		if _, ok := p.objects[item]; !ok {
			p.items = append(p.items, item)
		}
		p.objects[item] = append(p.objects[item], o)
	}
	for _, u := range r.URLs {
		if u == "" {
			continue
		}
		path, err := InvalidationPath(u)
		if err != nil {
			p.refused = append(p.refused, refusal{object{value: u}, err})
			continue
		}
		add(path, object{value: u})
	}
	for _, t := range r.Tags {
		if t == "" {
			continue
		}
		if !b.cacheTags {
			p.refused = append(p.refused, refusal{object{tag: true, value: t}, errNoTags})
			continue
		}
		item, err := TagItem(t)
		if err != nil {
			p.refused = append(p.refused, refusal{object{tag: true, value: t}, err})
			continue
		}
		add(item, object{tag: true, value: t})
	}
	return p
}

// chunks cuts items into invalidations that each fit the in-progress
// limits on their own.
func chunks(items []string, maxPaths, maxWildcards int) [][]string {
	var out [][]string
	var cur []string
	paths, wild := 0, 0
	for _, it := range items {
		w := isWildcard(it)
		if w && wild == maxWildcards || !w && paths == maxPaths {
			out = append(out, cur)
			cur, paths, wild = nil, 0, 0
		}
		cur = append(cur, it)
		if w {
			wild++
		} else {
			paths++
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Invalidations returns how many invalidations (CreateInvalidation calls)
// Purge creates for r when none of r was created before: r's distinct
// invalidation items, cut into invalidations that each fit the in-progress
// limits ([MaxPathsInProgress] paths and [MaxWildcardsInProgress] wildcard
// paths, or [WithInProgressLimits]'s), as Purge cuts them. A tag item
// ("#tag") is never a wildcard, even one ending in "*". URLs and tags that
// Purge would refuse count for nothing. Use it to tell what a purge costs
// before sending it, as a dry run does; it sends nothing.
func (b *Backend) Invalidations(r backends.Request) int {
	return len(chunks(b.planRequest(r).items, b.maxPaths, b.maxWildcards))
}

// count returns how many individual and wildcard items are in items.
func count(items []string) (paths, wildcards int) {
	for _, it := range items {
		if isWildcard(it) {
			wildcards++
		} else {
			paths++
		}
	}
	return paths, wildcards
}

// errNoTags refuses the tags of a backend without WithCacheTags.
var errNoTags = fmt.Errorf("%w: tag invalidation is off: CloudFront invalidates tags only on a distribution with a CacheTagConfig; configure one and pass cloudfront.WithCacheTags()", ErrNotInvalidatable)
