namespace Procyon.Cli;

/// <summary>Rows as aligned columns for a terminal.</summary>
internal static class TextTable
{
    public static void Write(TextWriter output, IReadOnlyList<string> header, IReadOnlyList<IReadOnlyList<string>> rows)
    {
        var widths = header.Select((name, i) => rows.Select(r => i < r.Count ? r[i].Length : 0).Append(name.Length).Max()).ToArray();
        output.WriteLine(Line(header, widths));
        output.WriteLine(string.Join("-+-", widths.Select(w => new string('-', w))));
        foreach (var row in rows)
        {
            output.WriteLine(Line(row, widths));
        }
    }

    private static string Line(IReadOnlyList<string> cells, int[] widths) =>
        string.Join(" | ", widths.Select((width, i) => (i < cells.Count ? cells[i] : "").PadRight(width))).TrimEnd();
}
