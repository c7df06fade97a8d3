using System.Globalization;

namespace Procyon.Benchmarks;

/// <summary>
/// The headline figures of each benchmark, one marked line each beside its human table, which
/// <c>./deploy/bench.sh all</c> gathers from every round into one markdown table of medians.
/// </summary>
internal static class Summary
{
    private const string Marker = "@summary";

    /// <summary>One figure of Procyon beside the same figure of the baseline named <paramref name="baseline"/>.</summary>
    public static void Write(string benchmark, string measure, double procyon, string baseline, double theirs) =>
        Console.WriteLine(string.Join('\t', Marker, benchmark, measure, baseline, Number(procyon), Number(theirs)));

    /// <summary>
    /// Prints the figures marked in <paramref name="outputs"/> (the saved output of each round) as
    /// one markdown table: per figure, the median of Procyon's, of the baseline's and of the
    /// per-round ratios, and how many rounds measured it.
    /// </summary>
    public static int Tabulate(IEnumerable<string> outputs)
    {
        var figures = outputs
            .SelectMany(File.ReadLines)
            .Select(line => line.Split('\t'))
            .Where(fields => fields.Length == 6 && fields[0] == Marker)
            .Select(fields => (Benchmark: fields[1], Measure: fields[2], Baseline: fields[3], Ours: Parse(fields[4]), Theirs: Parse(fields[5])))
            .GroupBy(figure => (figure.Benchmark, figure.Measure, figure.Baseline))
            .ToList();
        if (figures.Count == 0)
        {
            Console.Error.WriteLine("no benchmark printed a summary line");
            return 1;
        }
        Console.WriteLine("| benchmark | measure | Procyon | baseline | its figure | Procyon / baseline | rounds |");
        Console.WriteLine("|---|---|---:|---|---:|---:|---:|");
        foreach (var figure in figures)
        {
            var ours = Median(figure.Select(f => f.Ours));
            var theirs = Median(figure.Select(f => f.Theirs));
            var ratio = Median(figure.Select(f => f.Ours / f.Theirs));
            Console.WriteLine($"| {figure.Key.Benchmark} | {figure.Key.Measure} | {Shown(ours)} | {figure.Key.Baseline} | {Shown(theirs)} | {(ratio < 0.1 ? ratio.ToString("0.0##0", CultureInfo.InvariantCulture) : ratio.ToString("0.00", CultureInfo.InvariantCulture))}× | {figure.Count()} |");
        }
        return 0;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>Three significant figures, with thousands separated: enough for figures this noisy.</summary>
    private static string Shown(double value) =>
        Math.Abs(value) >= 100 ? value.ToString("#,0", CultureInfo.InvariantCulture) : value.ToString("0.0##", CultureInfo.InvariantCulture);

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static double Parse(string value) => double.Parse(value, CultureInfo.InvariantCulture);
}
