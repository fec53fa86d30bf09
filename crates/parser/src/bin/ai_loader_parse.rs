//! ai_loader's parser program, installed beside the library: the worker starts one per
//! document (`ai_loader_parser::isolate`). `ai_loader_parse KIND [LIBRARY] MEMORY CPU < document`
//! writes the document's text, or why there is none, to its standard output.

fn main() {
    ai_loader_parser::isolate::serve(|args, document| {
        ai_loader_parser::parsing::parse_as(args, document)
    })
}
