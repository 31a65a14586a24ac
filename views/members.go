package views

import "time"

// MemberRow is one person in the member list.
type MemberRow struct {
	ID       int64 // the membership's id, used in the row's forms
	Name     string
	Email    string
	Role     string
	JoinedAt time.Time
	IsYou    bool
}

// PendingInvitation is an invitation not accepted yet.
type PendingInvitation struct {
	ID        int64
	Email     string
	Role      string
	ExpiresAt time.Time
}

// InviteForm is the invitation form.
type InviteForm struct {
	Email  string
	Role   string
	Errors FieldErrors
}

// MembersView is the members screen: who is in the workspace, who is invited,
// and (for admins) the forms to change that.
type MembersView struct {
	Members     []MemberRow
	Invitations []PendingInvitation
	CanManage   bool
	Invite      InviteForm
	// NewLink is the link of an invitation just made: shown once, right now.
	NewLink  string
	NewEmail string
	// Problem is a message key about the last change (e.g. the last admin).
	Problem string
	Roles   []string
}
