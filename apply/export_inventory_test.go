package apply

import "context"

// WriteInventory stores inv as Apply does, for the inventory's size test.
func (c *Client) WriteInventory(ctx context.Context, inv *Inventory) error {
	return c.writeInventory(ctx, inv)
}

// SetResourceVersion lets a test write over an inventory it read.
func (inv *Inventory) SetResourceVersion(rv string) { inv.resourceVersion = rv }

// ResourceVersion is the inventory ConfigMap's, as read.
func (inv *Inventory) ResourceVersion() string { return inv.resourceVersion }
