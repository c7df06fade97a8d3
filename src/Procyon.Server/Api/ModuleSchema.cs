using Procyon.Runtime;

namespace Procyon.Server.Api;

/// <summary>What <c>GET /v1/databases/{db}/schema</c> returns: the module description, with types spelled Rust-style.</summary>
/// <param name="Optimized">False while the module runs the quick rewrite a publish answers with, until the optimized one replaces it.</param>
internal sealed record ModuleSchema(
    string Db,
    string Sha256,
    DateTimeOffset UpdatedAt,
    bool Optimized,
    IReadOnlyList<FunctionSchema> Functions,
    IReadOnlyList<TableSchemaView> Tables,
    IReadOnlyList<TypeSchema> Types)
{
    /// <summary>On publish: the result of the init reducer, when it ran.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public CallResult? Init { get; init; }

    public static ModuleSchema Of(LoadedModule module)
    {
        var description = module.Description;
        var typespace = description.Typespace;
        return new ModuleSchema(
            module.Database,
            module.Sha256,
            module.UpdatedAt,
            module.Optimized,
            description.Functions
                .Select(f => new FunctionSchema(
                    f.Name,
                    f.KindName,
                    f.Parameters.Elements.Select(p => new ParameterSchema(p.Name ?? "", typespace.Describe(p.Type))).ToList(),
                    typespace.Describe(f.ReturnType)))
                .ToList(),
            module.Tables.Values
                .Select(t => new TableSchemaView(
                    t.Name,
                    t.IsPublic,
                    t.Columns.Select(c => new ColumnSchema(c.Name, typespace.Describe(c.Type), c.Storage.SqlType, c.Flags.ToString())).ToList()))
                .ToList(),
            typespace.Names
                .OrderBy(n => n.Key)
                .Select(n => new TypeSchema(n.Value, typespace.Describe(typespace.Types[(int)n.Key])))
                .ToList());
    }
}

internal sealed record FunctionSchema(string Name, string Kind, IReadOnlyList<ParameterSchema> Params, string Returns);

internal sealed record ParameterSchema(string Name, string Type);

internal sealed record TypeSchema(string Name, string Definition);

internal sealed record TableSchemaView(string Name, bool Public, IReadOnlyList<ColumnSchema> Columns);

/// <param name="SqlType">The Postgres column type.</param>
/// <param name="Flags">PrimaryKey, AutoIncrement, Unique, Indexed, or None.</param>
internal sealed record ColumnSchema(string Name, string Type, string SqlType, string Flags);
