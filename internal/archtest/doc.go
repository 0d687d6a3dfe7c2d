// Package archtest holds tests of the module as a whole: rules of the
// house that no one package's tests can see, checked on the source so a
// change that breaks one fails here. It has no code of its own.
package archtest
