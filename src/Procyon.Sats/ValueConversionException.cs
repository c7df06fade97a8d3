namespace Procyon.Sats;

/// <summary>
/// A JSON value that does not fit its declared type. <see cref="Path"/> names where, e.g.
/// <c>order.items[2].qty</c>; the message says what was expected and what was given.
/// </summary>
public sealed class ValueConversionException : Exception
{
    private readonly List<string> _segments = [];

    public ValueConversionException(string problem) : base(problem) => Problem = problem;

    public string Problem { get; }

    public string Path => string.Concat(_segments).TrimStart('.');

    public override string Message => _segments.Count == 0 ? Problem : $"{Path}: {Problem}";

    /// <summary>Called while the error travels outwards, so the innermost segment ends up last.</summary>
    internal ValueConversionException Within(string segment)
    {
        _segments.Insert(0, segment);
        return this;
    }

    internal static string Field(string name) => "." + name;

    internal static string Index(int index) => $"[{index}]";
}
