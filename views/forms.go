package views

// FieldErrors maps a form field to the message key of what is wrong with it.
type FieldErrors map[string]string

// Add notes a problem with a field; the first problem of a field is kept.
func (e FieldErrors) Add(field, key string) {
	if _, ok := e[field]; !ok {
		e[field] = key
	}
}

// Any reports whether the form has a problem.
func (e FieldErrors) Any() bool { return len(e) > 0 }

// Field is one labelled input of a form.
type Field struct {
	Name         string
	Label        string // message key
	Type         string // text, email, password
	Value        string
	Error        string // message key, empty when the value is fine
	Hint         string // message key, optional
	Autocomplete string
	Required     bool
	Autofocus    bool
	MaxLength    int
}

// SignInForm is the sign-in page.
type SignInForm struct {
	Email string
	Next  string
	// Problem is the message key shown above the form: the same for an unknown
	// account and a wrong password.
	Problem string
}

// SignUpForm is the sign-up page: the company and its first admin. A person who
// is already signed in only names the company.
type SignUpForm struct {
	Company   string
	Principal string
	Name      string
	Email     string
	Errors    FieldErrors
	// SignedIn is true when an existing person creates another workspace.
	SignedIn bool
}

// RoleOption is a role in a select, with its translated label key.
type RoleOption struct {
	Value    string
	Selected bool
}
