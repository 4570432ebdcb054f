// Package onsite is the root of the Onsite module; it holds only the test
// that keeps the import rules between packages.
package onsite
