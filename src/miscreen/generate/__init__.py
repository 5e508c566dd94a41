"""Generation: new candidates from parent structures by substitution, relaxed by a universal
potential and placed on a hull (issue 24)."""
