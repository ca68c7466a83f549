package review

import (
	"fmt"
	"sort"
	"strings"

	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
)

// typeName returns a column's type as PostgreSQL writes it in short form.
func typeName(c *schema.Column) string {
	if c.Type == nil {
		return "?"
	}
	if c.Type.Type != nil {
		if s, err := postgres.FormatType(c.Type.Type); err == nil && s != "" {
			return s
		}
	}
	return c.Type.Raw
}

func exprString(e schema.Expr) string {
	switch e := e.(type) {
	case *schema.Literal:
		return e.V
	case *schema.RawExpr:
		return e.X
	case nil:
		return ""
	default:
		return fmt.Sprintf("%v", e)
	}
}

func commentOf(attrs []schema.Attr) string {
	for _, a := range attrs {
		if c, ok := a.(*schema.Comment); ok {
			return c.Text
		}
	}
	return ""
}

// columnDesc describes a column: type, nullability, default, identity.
func columnDesc(c *schema.Column) string {
	parts := []string{typeName(c)}
	if c.Type != nil && !c.Type.Null {
		parts = append(parts, "NOT NULL")
	}
	if d := exprString(c.Default); d != "" {
		parts = append(parts, "DEFAULT "+d)
	}
	for _, a := range c.Attrs {
		switch a := a.(type) {
		case *postgres.Identity:
			parts = append(parts, "GENERATED "+a.Generation+" AS IDENTITY")
		case *schema.GeneratedExpr:
			parts = append(parts, "GENERATED ALWAYS AS ("+a.Expr+") "+a.Type)
		}
	}
	return strings.Join(parts, " ")
}

// indexColumns describes an index's key parts: (a, b DESC, lower(c)).
func indexColumns(i *schema.Index) string {
	var parts []string
	for _, p := range i.Parts {
		s := exprString(p.X)
		if p.C != nil {
			s = p.C.Name
		}
		if p.Desc {
			s += " DESC"
		}
		parts = append(parts, s)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// indexDesc describes an index: unique, columns, predicate.
func indexDesc(i *schema.Index) string {
	s := indexColumns(i)
	if i.Unique {
		s = "unique " + s
	}
	for _, a := range i.Attrs {
		if p, ok := a.(*postgres.IndexPredicate); ok {
			s += " WHERE " + p.P
		}
	}
	return s
}

func columnNames(cs []*schema.Column) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// fkDesc describes a foreign key: (a, b) → t (x, y) ON DELETE CASCADE.
func fkDesc(fk *schema.ForeignKey) string {
	s := fmt.Sprintf("(%s) → %s (%s)", columnNames(fk.Columns), refTable(fk), columnNames(fk.RefColumns))
	if fk.OnDelete != "" && fk.OnDelete != schema.NoAction {
		s += " ON DELETE " + string(fk.OnDelete)
	}
	if fk.OnUpdate != "" && fk.OnUpdate != schema.NoAction {
		s += " ON UPDATE " + string(fk.OnUpdate)
	}
	return s
}

func code(s string) string {
	if strings.Contains(s, "`") {
		return "``" + s + "``"
	}
	return "`" + s + "`"
}

// renames are the table and column renames the new migration files make,
// which a schema diff sees as a drop and an add.
type renames struct {
	tables  map[string]string            // old name → new name
	columns map[string]map[string]string // table (new name) → old column → new column
}

// findRenames reads the renames from the statements of the files.
func findRenames(files []*migrationFile) renames {
	r := renames{tables: map[string]string{}, columns: map[string]map[string]string{}}
	for _, f := range files {
		for _, s := range f.Stmts {
			if m := renameColRE.FindStringSubmatch(s.Text); m != nil && unquote(m[3]) != "constraint" {
				t := unquote(m[2])
				if r.columns[t] == nil {
					r.columns[t] = map[string]string{}
				}
				r.columns[t][unquote(m[3])] = unquote(m[4])
			} else if m := renameTableRE.FindStringSubmatch(s.Text); m != nil {
				r.tables[unquote(m[2])] = unquote(m[3])
			}
		}
	}
	// Column renames are keyed by the table's final name.
	for old, nw := range r.tables {
		if cols, ok := r.columns[old]; ok {
			r.columns[nw] = cols
		}
	}
	return r
}

// describeChanges says in words what a list of schema changes does, one
// Markdown list item per change (details of an added table are indented).
func describeChanges(changes []schema.Change, rn renames) []string {
	var out []string
	added := map[string]bool{}
	for _, c := range changes {
		if a, ok := c.(*schema.AddTable); ok {
			added[a.T.Name] = true
		}
	}
	renamedTo := map[string]bool{}
	for _, nw := range rn.tables {
		renamedTo[nw] = added[nw]
	}
	for _, c := range changes {
		switch c := c.(type) {
		case *schema.DropTable:
			if nw, ok := rn.tables[c.T.Name]; ok && renamedTo[nw] {
				out = append(out, fmt.Sprintf("**Renamed table %s** to %s", code(c.T.Name), code(nw)))
				continue
			}
		case *schema.AddTable:
			if renamedTo[c.T.Name] {
				continue
			}
		}
		switch c := c.(type) {
		case *schema.AddTable:
			t := c.T
			s := fmt.Sprintf("**Added table %s** (%s, %s, %s, %s)", code(t.Name),
				plural(len(t.Columns), "column", "columns"), plural(len(t.Indexes), "index", "indexes"),
				plural(len(t.ForeignKeys), "foreign key", "foreign keys"), plural(len(checksOf(t.Attrs)), "check", "checks"))
			if cm := commentOf(t.Attrs); cm != "" {
				s += ": " + cm
			}
			out = append(out, s)
			for _, col := range t.Columns {
				out = append(out, fmt.Sprintf("  - column %s %s", code(col.Name), columnDesc(col)))
			}
			if t.PrimaryKey != nil {
				out = append(out, "  - primary key "+indexColumns(t.PrimaryKey))
			}
			for _, i := range t.Indexes {
				out = append(out, fmt.Sprintf("  - index %s %s", code(i.Name), indexDesc(i)))
			}
			for _, fk := range t.ForeignKeys {
				out = append(out, fmt.Sprintf("  - foreign key %s %s", code(fk.Symbol), fkDesc(fk)))
			}
			for _, ck := range checksOf(t.Attrs) {
				out = append(out, fmt.Sprintf("  - check %s: %s", code(ck.Name), code(ck.Expr)))
			}
		case *schema.DropTable:
			out = append(out, fmt.Sprintf("**Dropped table %s** (%d columns)", code(c.T.Name), len(c.T.Columns)))
		case *schema.RenameTable:
			out = append(out, fmt.Sprintf("**Renamed table %s** to %s", code(c.From.Name), code(c.To.Name)))
		case *schema.ModifyTable:
			out = append(out, describeTableChanges(c.T, c.Changes, rn.columns[c.T.Name])...)
		default:
			out = append(out, fmt.Sprintf("%T", c))
		}
	}
	return out
}

func checksOf(attrs []schema.Attr) []*schema.Check {
	var cs []*schema.Check
	for _, a := range attrs {
		if c, ok := a.(*schema.Check); ok {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	return cs
}

func describeTableChanges(t *schema.Table, changes []schema.Change, renamed map[string]string) []string {
	var out []string
	p := "**" + code(t.Name) + "**: "
	adds := map[string]bool{}
	for _, c := range changes {
		if a, ok := c.(*schema.AddColumn); ok {
			adds[a.C.Name] = true
		}
	}
	renamedTo := map[string]bool{}
	for _, nw := range renamed {
		renamedTo[nw] = adds[nw]
	}
	for _, c := range changes {
		switch c := c.(type) {
		case *schema.AddColumn:
			if renamedTo[c.C.Name] {
				continue
			}
			out = append(out, fmt.Sprintf("%sadded column %s %s", p, code(c.C.Name), columnDesc(c.C)))
		case *schema.DropColumn:
			if nw, ok := renamed[c.C.Name]; ok && renamedTo[nw] {
				out = append(out, fmt.Sprintf("%srenamed column %s to %s", p, code(c.C.Name), code(nw)))
				continue
			}
			out = append(out, fmt.Sprintf("%sdropped column %s (%s)", p, code(c.C.Name), columnDesc(c.C)))
		case *schema.RenameColumn:
			out = append(out, fmt.Sprintf("%srenamed column %s to %s", p, code(c.From.Name), code(c.To.Name)))
		case *schema.ModifyColumn:
			var what []string
			if c.Change.Is(schema.ChangeType) {
				what = append(what, fmt.Sprintf("type %s → %s", typeName(c.From), typeName(c.To)))
			}
			if c.Change.Is(schema.ChangeNull) {
				what = append(what, fmt.Sprintf("%s → %s", nullWord(c.From), nullWord(c.To)))
			}
			if c.Change.Is(schema.ChangeDefault) {
				what = append(what, fmt.Sprintf("default %s → %s", orNone(exprString(c.From.Default)), orNone(exprString(c.To.Default))))
			}
			if c.Change.Is(schema.ChangeComment) {
				what = append(what, fmt.Sprintf("comment %q → %q", commentOf(c.From.Attrs), commentOf(c.To.Attrs)))
			}
			if c.Change.Is(schema.ChangeGenerated) || c.Change.Is(schema.ChangeAttr) {
				what = append(what, fmt.Sprintf("%s → %s", columnDesc(c.From), columnDesc(c.To)))
			}
			if len(what) == 0 {
				what = append(what, fmt.Sprintf("%s → %s", columnDesc(c.From), columnDesc(c.To)))
			}
			out = append(out, fmt.Sprintf("%schanged column %s: %s", p, code(c.To.Name), strings.Join(what, "; ")))
		case *schema.AddIndex:
			out = append(out, fmt.Sprintf("%sadded index %s %s", p, code(c.I.Name), indexDesc(c.I)))
		case *schema.DropIndex:
			out = append(out, fmt.Sprintf("%sdropped index %s %s", p, code(c.I.Name), indexDesc(c.I)))
		case *schema.ModifyIndex:
			out = append(out, fmt.Sprintf("%schanged index %s: %s → %s", p, code(c.To.Name), indexDesc(c.From), indexDesc(c.To)))
		case *schema.RenameIndex:
			out = append(out, fmt.Sprintf("%srenamed index %s to %s", p, code(c.From.Name), code(c.To.Name)))
		case *schema.AddPrimaryKey:
			out = append(out, fmt.Sprintf("%sadded primary key %s", p, indexColumns(c.P)))
		case *schema.DropPrimaryKey:
			out = append(out, fmt.Sprintf("%sdropped primary key %s", p, indexColumns(c.P)))
		case *schema.ModifyPrimaryKey:
			out = append(out, fmt.Sprintf("%schanged primary key %s → %s", p, indexColumns(c.From), indexColumns(c.To)))
		case *schema.AddForeignKey:
			out = append(out, fmt.Sprintf("%sadded foreign key %s %s", p, code(c.F.Symbol), fkDesc(c.F)))
		case *schema.DropForeignKey:
			out = append(out, fmt.Sprintf("%sdropped foreign key %s %s", p, code(c.F.Symbol), fkDesc(c.F)))
		case *schema.ModifyForeignKey:
			out = append(out, fmt.Sprintf("%schanged foreign key %s: %s → %s", p, code(c.To.Symbol), fkDesc(c.From), fkDesc(c.To)))
		case *schema.AddCheck:
			out = append(out, fmt.Sprintf("%sadded check %s: %s", p, code(c.C.Name), code(c.C.Expr)))
		case *schema.DropCheck:
			out = append(out, fmt.Sprintf("%sdropped check %s: %s", p, code(c.C.Name), code(c.C.Expr)))
		case *schema.ModifyCheck:
			out = append(out, fmt.Sprintf("%schanged check %s: %s → %s", p, code(c.To.Name), code(c.From.Expr), code(c.To.Expr)))
		case *schema.AddAttr:
			if cm, ok := c.A.(*schema.Comment); ok {
				out = append(out, fmt.Sprintf("%scomment set: %q", p, cm.Text))
			}
		case *schema.ModifyAttr:
			from, _ := c.From.(*schema.Comment)
			to, _ := c.To.(*schema.Comment)
			if from != nil && to != nil {
				out = append(out, fmt.Sprintf("%scomment %q → %q", p, from.Text, to.Text))
			}
		case *schema.DropAttr:
			if cm, ok := c.A.(*schema.Comment); ok {
				out = append(out, fmt.Sprintf("%scomment removed (was %q)", p, cm.Text))
			}
		default:
			out = append(out, fmt.Sprintf("%s%T", p, c))
		}
	}
	return out
}

func nullWord(c *schema.Column) string {
	if c.Type != nil && c.Type.Null {
		return "NULL"
	}
	return "NOT NULL"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
