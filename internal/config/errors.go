package config

import "fmt"

// msgError is a one-line user-facing message that wraps a sentinel without
// prefixing its text, so messages read exactly as written here.
type msgError struct {
	msg      string
	sentinel error
}

func (e *msgError) Error() string { return e.msg }
func (e *msgError) Unwrap() error { return e.sentinel }

func usageErrorf(format string, a ...any) error {
	return &msgError{msg: fmt.Sprintf(format, a...), sentinel: ErrUsage}
}

func invalidf(format string, a ...any) error {
	return &msgError{msg: fmt.Sprintf(format, a...), sentinel: ErrInvalid}
}
