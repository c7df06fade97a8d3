using System.CommandLine;

namespace Procyon.Cli;

/// <summary><c>generate</c>: typed client bindings for a database, from its schema and the server's OpenAPI document.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var language = new Option<string>("--lang") { Description = "typescript or csharp", Required = true };
        language.AcceptOnlyFromAmong("typescript", "csharp");
        var db = new Option<string>("--db") { Description = "The database to generate a client for", Required = true };
        var output = new Option<string>("--out") { Description = "The directory to write the file to (created if missing)", DefaultValueFactory = _ => "." };
        var ns = new Option<string>("--namespace") { Description = "C#: the namespace (default Procyon.Clients.<Db>)" };
        return CliOptions.Command("generate", "Write typed client bindings (TypeScript or C#) for a database's functions and types", [language, db, output, ns], async (parse, client, cancellationToken) =>
        {
            var model = await BindingsModel.LoadAsync(client, parse.GetValue(db)!, cancellationToken);
            var (file, text) = parse.GetValue(language) == "typescript"
                ? (TypeScriptBindings.FileName(model), TypeScriptBindings.Write(model))
                : (CSharpBindings.FileName(model), CSharpBindings.Write(model, parse.GetValue(ns)));
            var path = Path.Combine(Directory.CreateDirectory(parse.GetValue(output)!).FullName, file);
            await File.WriteAllTextAsync(path, text, cancellationToken);
            Console.WriteLine($"Wrote {path}: {model.Functions.Count} functions, {model.Types.Count} types");
            return 0;
        });
    }
}
