"""The audit trail of every operator action and every state change a webhook caused."""
