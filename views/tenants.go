package views

// WorkspaceChoice is one tenant in the switcher.
type WorkspaceChoice struct {
	Slug      string
	Name      string
	Role      string
	Suspended bool
	Current   bool
}

// TenantsView is the workspace switcher.
type TenantsView struct {
	Workspaces []WorkspaceChoice
}
