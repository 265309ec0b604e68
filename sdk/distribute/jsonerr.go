package distribute

import (
	"encoding/json"
	"errors"
)

// marshalWithError encodes fields, a struct, with err as its last field,
// the string "error" (left out when err is nil): the JSON form of every
// result type of this package. (A generic struct cannot embed its type
// parameter, so the field is added to the encoded object.)
func marshalWithError(fields any, err error) ([]byte, error) {
	b, merr := json.Marshal(fields)
	msg := errText(err)
	if merr != nil || msg == "" {
		return b, merr
	}
	quoted, merr := json.Marshal(msg)
	if merr != nil {
		return nil, merr
	}
	// b is an object; "error" goes before its closing brace.
	b = b[:len(b)-1]
	if len(b) > 1 {
		b = append(b, ',')
	}
	b = append(append(b, `"error":`...), quoted...)
	return append(b, '}'), nil
}

// unmarshalWithError reads what marshalWithError writes: it replaces
// *fields whole, and sets *errp, the error field of *fields, to an error
// with the text of "error", if any. *fields is left alone when b cannot be
// read.
func unmarshalWithError[T any](b []byte, fields *T, errp *error) error {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	var e struct {
		Error string `json:"error,omitempty"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return err
	}
	*fields = v
	if e.Error != "" {
		*errp = errors.New(e.Error)
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
