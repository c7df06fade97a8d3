namespace Procyon.Sats;

/// <summary>
/// Spells types by their structure alone: each named type they reach is <c>#0</c>, <c>#1</c>, … in
/// order of first reach, and <see cref="Where"/> spells those out breadth first, so recursive types
/// end and long chains of named types take a loop, not recursion. Equal text means the same values
/// in JSON, whatever the types are named or numbered in their typespace.
/// </summary>
public sealed class TypeStructure(Typespace typespace)
{
    private readonly Dictionary<uint, int> _numbers = [];
    private readonly List<uint> _reached = [];

    /// <summary>The type, with named types as their numbers: <c>Vec&lt;#0&gt;</c>.</summary>
    public string Describe(AlgebraicType type) => typespace.Describe(type, Number);

    /// <summary><c>where #0 = { name: String, qty: u8 }, …</c> for every named type reached so far and those they reach; empty when none.</summary>
    public string Where()
    {
        var definitions = new List<string>();
        // Describing a type may reach more: the list grows while this loop runs.
        for (var i = 0; i < _reached.Count; i++)
        {
            definitions.Add($"#{i} = {Describe(typespace.Resolve(typespace.Types[(int)_reached[i]]))}");
        }
        return definitions.Count == 0 ? "" : "where " + string.Join(", ", definitions);
    }

    private string Number(uint index)
    {
        if (!_numbers.TryGetValue(index, out var number))
        {
            number = _numbers[index] = _reached.Count;
            _reached.Add(index);
        }
        return $"#{number}";
    }
}
